"""Members: memberships of an org and email invitations, claimed at sign-in."""
