"""The organizer's catalog: events, tiers and on-sale schedules."""
