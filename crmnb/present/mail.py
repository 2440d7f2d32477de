"""Send a case's report by e-mail: the report as the HTML body, the case's other outputs (the workbook) attached."""

from __future__ import annotations

import html
import re
import smtplib
from collections.abc import Iterable
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from pathlib import Path

from crmnb.errors import CrmnbError
from crmnb.present.outputs import OUTPUTS, media_type


def attachments_beside(report: Path) -> list[Path]:
    """Return the case's outputs found beside its report, but the report itself, in the registry's order."""
    return [p for name in OUTPUTS if (p := report.with_name(name)) != report and p.is_file()]


def build_message(
    report: Path, to: list[str], sender: str, subject: str | None = None, attachments: Iterable[Path] | None = None
) -> EmailMessage:
    """Return the e-mail: the report as HTML body (with a plain-text part) and the attachments.

    ``attachments`` defaults to the case's other outputs beside the report (the workbook);
    the subject to the report's title.
    """
    report = Path(report)
    if not report.is_file():
        raise CrmnbError(f"report not found: {report} (run the case first: crmnb run parameters/<case>.yaml)")
    if not to:
        raise CrmnbError("no recipient: give at least one address with --to")
    body = report.read_text(encoding="utf-8")
    title = re.search(r"<title>(.*?)</title>", body, re.S)
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject or (html.unescape(title.group(1)).strip() if title else report.parent.name)
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1] if "@" in sender else None)
    text = re.sub(r"<(style|script)\b.*?</\1>", "", body, flags=re.S | re.I)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    text = re.sub(r"[ \t]+", " ", re.sub(r"\n\s*\n+", "\n\n", text)).strip()
    msg.set_content(text[:20_000] + ("\n…" if len(text) > 20_000 else ""))
    msg.add_alternative(body, subtype="html")
    for path in attachments_beside(report) if attachments is None else map(Path, attachments):
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
