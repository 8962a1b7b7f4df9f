"""The shared kernel: exact points and money, errors and their gRPC mapping, the DB base, serving."""
