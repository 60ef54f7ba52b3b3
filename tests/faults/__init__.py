"""Fault injection: a flaky API and Discord, SIGKILL restarts, hostile input and malicious API replies."""
