"""The kinds of audit event the flows emit. The strings are stored in the audit trail:
never change one, add a new kind instead."""

from __future__ import annotations

# Anyone's conversation
CONVERSATION_STARTED = "conversation.started"
LANGUAGE_CHANGED = "participant.language_changed"
OPTED_IN = "participant.opted_in"
OPTED_OUT = "participant.opted_out"
DATA_REQUESTED = "participant.data_requested"  # MYDATA: a copy of one's data (GDPR Art. 15)

# Recruitment: invitation, consent, registration, the draw's answer
INVITATION_ACCEPTED = "invitation.accepted"
INVITATION_DECLINED = "invitation.declined"
CONSENT_GIVEN = "consent.given"
CONSENT_REFUSED = "consent.refused"
REGISTRATION_COMPLETED = "registration.completed"
WITHDREW = "participant.withdrew"
SELECTION_CONFIRMED = "selection.confirmed"
SELECTION_DECLINED = "selection.declined"
SELECTION_LATE_REPLY = "selection.late_reply"

# A panel member's calendar replies
BRIEFING_TIME_CHANGED = "briefing.time_changed"
BRIEFING_PAGED = "briefing.paged"
BRIEFING_READ = "briefing.read"
ATTENDANCE_REPORTED = "attendance.reported"

# Organisers' chat commands
BROADCAST_PREVIEWED = "broadcast.previewed"
BROADCAST_CONFIRMED = "broadcast.confirmed"
BROADCAST_DISCARDED = "broadcast.discarded"
COMMAND_REFUSED = "organiser.command_refused"
CODE_REJECTED = "organiser.code_rejected"
SMS_LOCKED = "organiser.sms_locked"
SCHEDULE_VIEWED = "organiser.schedule_viewed"
SIGNIN_LINK_ASKED = "organiser.link_asked"  # LINK: a sign-in link to the organiser page

# Ballots: who voted is recorded (pseudonym and ballot), never what or the receipt code
BALLOT_VOTE_CAST = "ballot.vote_cast"
BALLOT_TOO_LATE = "ballot.too_late"
# Small-group conversation (by pseudonym and seat letter; never the text, at most a digest)
PROMPT_OPENED = "deliberation.prompt_opened"
PROMPT_CLOSED = "deliberation.prompt_closed"
CONTRIBUTED = "deliberation.contributed"  # a member's message at their table
PASSED = "deliberation.passed"  # PASS
RELAYED = "deliberation.relayed"  # a contribution sent on to the table's other members
HELD = "deliberation.held"  # over the fair share (or the table paused): relayed later
NUDGED = "deliberation.nudged"
DIGEST_SENT = "deliberation.digest_sent"
REPEAT_ASKED = "deliberation.repeat_asked"  # REPEAT
REPORTED = "deliberation.reported"  # REPORT: the table's last messages to the facilitator
RELAY_MODE_CHANGED = "deliberation.mode_changed"  # EVERY / DIGEST
POSTED = "deliberation.posted"  # a facilitator's message to a table
PAUSED = "deliberation.paused"
RESUMED = "deliberation.resumed"
HIDDEN = "deliberation.hidden"  # a facilitator removed a message
AFTER_CLOSE = "deliberation.after_close"  # written to the table once its prompt had closed

# Facilitators' chat commands (the action, the tables, who asked: a role or an organiser)
FACILITATION_ASKED = "facilitation.asked"
FACILITATION_REFUSED = "facilitation.refused"  # a table, or a command, that is not theirs

# Deliberative polls: who finished a wave (by pseudonym), never what they answered
POLL_COMPLETED = "poll.completed"
POLL_WAVE_OPENED = "poll.wave_opened"
POLL_WAVE_CLOSED = "poll.wave_closed"
POLL_REMINDED = "poll.reminded"
# The opinion map: an answer (agree 1, disagree -1, pass 0) is pseudonymous map data, not a
# secret ballot; a proposal's event carries its length only, never its text.
STATEMENT_ANSWERED = "statement.answered"
STATEMENT_PROPOSED = "statement.proposed"
