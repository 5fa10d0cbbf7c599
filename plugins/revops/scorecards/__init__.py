"""Scorecards: audiences, the view model, the PDF and its delivery by e-mail."""
