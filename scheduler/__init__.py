"""The assembly calendar: sessions, briefings, reminders, and when each is due."""
