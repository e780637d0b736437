"""The organizers' weekly digest: figures computed from SQL, a mail through the outbox."""
