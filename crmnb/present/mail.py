"""Send a case's brief by e-mail: the brief as the body (crmnb.present.mail_brief), the report and workbook attached."""

from __future__ import annotations

import smtplib
from collections.abc import Iterable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

from crmnb.errors import CrmnbError
from crmnb.present.mail_brief import brief_html, brief_text, make_brief
from crmnb.present.outputs import every_output, media_type


def attachments_beside(report: Path) -> list[Path]:
    """Return the case's outputs found beside its report, the report included, in the registry's order."""
    return [p for name in every_output() if (p := report.with_name(name)).is_file()]


def build_message(
    report: Path, to: list[str], sender: str, subject: str | None = None, attachments: Iterable[Path] | None = None
) -> EmailMessage:
    """Return the e-mail: the brief as HTML body (its charts as ``cid:`` parts) and plain text, the outputs attached.

    ``attachments`` defaults to the case's outputs beside the report (the full report, the workbook);
    the subject to the title and the headline, which carries the verdict.
    """
    report = Path(report)
    if not report.is_file():
        raise CrmnbError(f"report not found: {report} (run the case first: crmnb run parameters/<case>.yaml)")
    if not to:
        raise CrmnbError("no recipient: give at least one address with --to")
    files = attachments_beside(report) if attachments is None else [Path(p) for p in attachments]
    brief = make_brief(report, [p.name for p in files])
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject or brief.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1] if "@" in sender else None)
    msg.set_content(brief_text(brief))
    msg.add_alternative(brief_html(brief), subtype="html")
    html_part = msg.get_payload()[1]
    for chart in brief.charts:  # multipart/related: the clients show these where the HTML says cid:
        html_part.add_related(
            chart.png, maintype="image", subtype="png", cid=f"<{chart.cid}>", filename=f"{chart.cid.split('.')[0]}.png"
        )
    for path in files:
        maintype, subtype = media_type(path).split("/")
        msg.add_attachment(
            path.read_bytes(), maintype=maintype, subtype=subtype, filename=f"{report.parent.name}_{path.name}"
        )
    return msg


def write_eml(msg: EmailMessage, path: Path) -> Path:
    """Write the message as an .eml file to send by hand."""
    path = Path(path)
    path.write_bytes(msg.as_bytes())
    return path


def send(
    msg: EmailMessage,
    host: str = "localhost",
    port: int = 25,
    starttls: bool = False,
    user: str | None = None,
    password: str | None = None,
    timeout: float = 30.0,
) -> None:
    """Send the message through an SMTP server, naming the server in any error."""
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            if starttls:
                smtp.starttls()
            if user:
                smtp.login(user, password or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise CrmnbError(f"could not send through SMTP server {host}:{port}: {exc}") from None
