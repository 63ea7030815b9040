//! twinwire-adapter-amqp: connects connection sources and targets to AMQP 0.9.1 brokers; knows bytes, headers and
//! addresses of its transport, nothing of twins. Filled by the AMQP adapter issue.
