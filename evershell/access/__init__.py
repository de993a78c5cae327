"""Identity and access: users, memberships, credentials, scopes and roles."""
