"""Slack: the outbox that delivers messages with retries, and the endpoint for button presses."""
