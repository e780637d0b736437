"""The human-carried routes: letters a volunteer types into a service's web form (the
desk) or prints and posts (the post), and the scans they bring back. The adapters that
route letters here are gateway/providers/desk.py and post.py; every outcome is recorded
through gateway.actions."""
