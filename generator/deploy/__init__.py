"""Deployment: ``bouncegen install``/``uninstall`` (validate, back up, move into place, start the
services, check them, wire Postfix, roll back) and ``bouncegen channel`` (an sa-update channel of
the SpamAssassin files).

Modules by job: source (the rendered input), layout (where files go, the plan), validate (the
real tools), stage (the staged copy and the plan), maincf (merging main.cf lines, the shared
smtpd_milters list), files (diffs, atomic writes, backup), services (systemd or plain commands,
the health gate, reloads), install (the two commands and their CLI), channel.
"""
