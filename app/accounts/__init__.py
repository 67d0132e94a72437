"""Reviewers who sign for real: accounts with Argon2id passwords, an Ed25519 key pair per
user (the private half encrypted under the password), electronic signatures bound to the
record and to the audit chain head, and the session rules of 21 CFR 11.200(a).

Core: no Qt. The store keeps the rows (``app.store.accounts``); this package decides who may
do what and holds the cryptography.
"""
