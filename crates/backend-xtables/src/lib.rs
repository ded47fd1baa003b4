//! backend-xtables
