//! twinwire-adapter-kafka: connects connection sources and targets to Kafka clusters; knows bytes, headers and
//! addresses of its transport, nothing of twins. Filled by the Kafka adapter issue.
