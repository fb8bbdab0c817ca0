"""The organisers' and exhibitors' web console, served from inside the world server.

``server.app`` starts it with ``--console-port`` (``console.app.start_console``); it reads
and acts on the running world through ``server.admin.Admin`` only.
"""
