"""The expo across processes: hall instances, seats, presence and services on NATS
(JetStream key-value), shared commerce state on PostgreSQL (server/pg_store.py).

Each concept is a sans-I/O core (the rules, testable without a broker) and a thin nats-py
shell. Without ``--cluster`` none of this is imported and the server is one process.
"""
