//! Compiles bound filter DAGs into an abstract chain IR.
