"""Local stand-ins for production services (an SMTP sink), for the demo and the tests."""
