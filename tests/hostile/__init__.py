"""The threat model's tests: one module per attack surface, one test per finding.

What is trusted: the config file and a forge's verified signature. What is not: every
payload field (even a signed one), the repository's contents, anonymous requests, and the
build's output. SECURITY.md says what each module here proves.
"""
