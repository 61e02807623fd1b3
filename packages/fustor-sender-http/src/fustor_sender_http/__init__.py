"""fustor_sender_http."""
