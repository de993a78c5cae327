"""The offline demo: on a fresh instance (no org at all), ``evershell up`` creates a demo
org with a ``scripted`` provider and a role whose script writes a small program into
``/data/work``, runs it on the file uploaded with the task, and answers with what it
printed — a whole task, end to end, with no model API key.
"""

from __future__ import annotations

import sqlalchemy as sa

from evershell.extensions import db

DEMO_EMAIL = "demo@evershell.local"
DEMO_SLUG = "demo"
ROLE_NAME = "word-counter"

PROGRAM = '''\
import collections
import pathlib

uploads = sorted(pathlib.Path("/data/uploads").glob("*/*"), key=lambda p: p.stat().st_mtime)
if not uploads:
    print("No file came with this task: attach a text file and try again.")
else:
    path = uploads[-1]
    text = path.read_text(errors="replace")
    words = [w.strip(".,;:!?\\"'()[]").lower() for w in text.split()]
    print(f"{path.name}: {len(text.splitlines())} lines, {len(words)} words, "
          f"{len(text)} characters")
    for word, count in collections.Counter(w for w in words if w).most_common(5):
        print(f"{count:>6}  {word}")
'''

SCRIPT = [
    {"text": "I'll write a small word-count program into /data/work and run it on your file.",
     "tool_calls": [{"name": "write_file", "arguments": {
         "path": "/data/work/wordcount.py", "content": PROGRAM}}]},
    {"tool_calls": [{"name": "shell", "arguments": {
        "command": "python3 /data/work/wordcount.py", "timeout_seconds": 30}}]},
    {"text": "Here is what the program printed:\n\n{last_tool_output}"},
]

CAPS = """\
tools: [shell, read_file, write_file, list_files]
network: none
limits:
  cpu_seconds: 30
  wall_seconds: 60
  memory_mb: 256
checkpoints: none
"""


def ensure_demo() -> str | None:
    """Create the demo org when no org exists yet; the demo owner's email if it did."""
    from evershell.access import services as access
    from evershell.access.authn import build_principal
    from evershell.access.principal import CredentialShape
    from evershell.orgs import services as orgs
    from evershell.orgs.models import Org
    from evershell.providers import services as providers
    from evershell.roles import services as roles

    if db.session.scalar(sa.select(Org.id).limit(1)) is not None:
        db.session.commit()
        return None
    org = orgs.create_org("Demo", DEMO_SLUG)
    membership = access.add_member(org, DEMO_EMAIL, "owner", "Demo owner")
    actor = build_principal(membership.user, org, CredentialShape.CLI)
    provider = providers.create(actor, {
        "name": "Offline demo (scripted)", "kind": "scripted", "models": ["demo"],
        "script": SCRIPT})
    roles.create(actor, {
        "name": ROLE_NAME, "provider_id": provider.id, "model": "demo",
        "description": "Counts the lines and words of the file you upload, by writing and "
                       "running a small program in its workspace.",
        "system_prompt": "You count words in uploaded files.", "capabilities": CAPS})
    db.session.commit()
    return DEMO_EMAIL
