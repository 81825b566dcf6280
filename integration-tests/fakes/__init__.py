"""Scripted fakes of the servers Pacer talks to (Mesos agent, master, Consul),
speaking the real wire protocols on 127.0.0.1. See each module's docstring."""
