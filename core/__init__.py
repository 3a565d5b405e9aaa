"""What every package shares and nothing else: who acts (principal) and what time it is
(clock). It imports no other package of the project."""
