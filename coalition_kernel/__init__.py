"""The shared kernel: exact points and money, errors and their gRPC mapping, DB base, serving."""
