"""A simulator of a prison e-mail service speaking the contract in provider-api.md.

`app.create_app` builds the Flask app, `server.SimulatorServer` runs it in a thread,
`python -m gateway.simulator` serves it from the command line.
"""
