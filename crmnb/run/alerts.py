"""``crmnb batch --mail-on``: after a batch, mail a case's report only when its run calls for it.

``alert``: the run failed, its verdict changed since the run before, or an action turned worse or
overdue; ``failure``: the run failed (or timed out). A case whose run calls for nothing sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

from crmnb.present.words import t
from crmnb.run.due import alert_reasons

MAIL_ON = ("alert", "failure")


@dataclass(frozen=True)
class MailSettings:
    """Whom to mail, on what, through which server."""

    on: str
    to: tuple[str, ...]
    sender: str = "crmnb@localhost"
    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)


def language(job) -> str:
    """Return the language of a job's case (its report's), English when its case file cannot be read."""
    from crmnb.params import load_case

    try:
        return load_case(job.file).language
    except Exception:  # a case file that does not validate: its failure is mailed all the same
        return "en"


def reasons_for(job, root: Path, on: str) -> list[str]:
    """Return why a batch job's case is mailed under ``on``, in its language ([] when it is not)."""
    lang = language(job)
    if job.status in ("failed", "timeout"):
        return [t("loop.alert.failed", lang, status=job.status, why=job.reason or job.error)]
    if on == "failure" or job.status != "ok":
        return []
    return alert_reasons(root / job.case_id, job.run_id, lang)


def failure_message(case_id: str, reasons: list[str], log: Path, to: Iterable[str], sender: str) -> EmailMessage:
    """Return the plain-text message of a run that failed: why, and its log attached."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = t("loop.alert.subject", "en", case=case_id, reasons=reasons[0])[:200]
    msg["From"], msg["To"] = sender, ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1] if "@" in sender else None)
    msg["X-Crmnb-Alert"] = "; ".join(reasons)[:900]
    msg.set_content(f"{case_id}\n\n" + "\n".join(f"- {r}" for r in reasons) + "\n")
    if log.is_file():
        msg.add_attachment(log.read_bytes(), maintype="text", subtype="plain", filename=f"{case_id}_run.log")
    return msg


def alert_message(job, root: Path, reasons: list[str], mail: MailSettings) -> EmailMessage:
    """Return the message for one case: its report's brief with the reasons in the subject, or the failure."""
    from crmnb.present.mail import build_message

    folder = root / job.case_id
    if job.status != "ok" or job.report is None or not Path(job.report).is_file():
        return failure_message(job.case_id, reasons, folder / "run.log", mail.to, mail.sender)
    msg = build_message(Path(job.report), list(mail.to), mail.sender)
    subject = msg["Subject"]
    del msg["Subject"]
    lang = language(job)
    text = t("loop.list_sep", lang).join(reasons)
    msg["Subject"] = t("loop.alert.subject_report", lang, case=job.case_id, reasons=text, subject=subject)[:250]
    msg["X-Crmnb-Alert"] = "; ".join(reasons)[:900]
    return msg


def send_alerts(jobs, root: Path, mail: MailSettings, say=print) -> list[str]:
    """Mail each case whose run calls for it under ``mail.on``; return the case ids mailed."""
    from crmnb.present.mail import send

    sent = []
    for job in jobs:
        reasons = reasons_for(job, root, mail.on)
        if not reasons:
            continue
        msg = alert_message(job, root, reasons, mail)
        send(msg, mail.host, mail.port, starttls=mail.starttls, user=mail.user, password=mail.password)
        say(f"{job.case_id}: mailed to {', '.join(mail.to)}: {'; '.join(reasons)}")
        sent.append(job.case_id)
    return sent
