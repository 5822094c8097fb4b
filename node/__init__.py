"""The peer daemon (config, keys, storage, transport, executor, API) and the CLI."""
