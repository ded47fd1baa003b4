//! netdrv
