"""The corpus runner: ``bouncegen check`` judges labelled mails with the real engines (private
spamd, postmap) and derives every table, the JSON and the JUnit XML from one per-message log."""
