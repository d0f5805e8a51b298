"""Scheduler templates (systemd timer, Windows Task Scheduler, launchd), rendered by
``roomprobe schedule install``. Installed as the data package ``roomprobe.schedule_templates``."""
