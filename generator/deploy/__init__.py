"""Deployment: ``bouncegen install``/``uninstall`` (validate, back up, move into place, roll back)
and ``bouncegen channel`` (an sa-update channel of the SpamAssassin files)."""
