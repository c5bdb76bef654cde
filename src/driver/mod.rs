//! Nomad `BasePlugin` and `Driver` gRPC services: config schemas, cty-msgpack decoding,
//! fingerprint, task store, lifecycle RPCs, stats, events and exec.
