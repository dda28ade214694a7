"""The people context: rules about a person that several contexts apply the same way.

Identity (who a lead is), contacts (the region rule for emails), phones (E.164), timezones
(an expert's local time) and suppression (never contact again). Services import it; the kernel
(`sourcing.common`) does not.
"""
