//! Why a bound rule could not be lowered.

use nwfilter_model::FilterName;

/// A lowering failure, naming the rule it happened in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LowerError {
    /// A value the front half should have bound and type-checked is not
    /// usable here (still a variable, wrong kind, or out of range).
    #[error("filter '{filter}', rule {rule}: attribute '{attr}': {reason}")]
    Value {
        filter: FilterName,
        /// 1-based position among the filter's rules (as a user counts).
        rule: usize,
        attr: &'static str,
        reason: String,
    },
    /// libvirt refuses this too: the reversed copy of an `inout` STP rule
    /// would need a destination-MAC match on top of the BPDU address.
    #[error(
        "filter '{filter}', rule {rule}: STP filtering in direction 'inout' with \
         'srcmacaddr' set is not supported; write separate 'in' and 'out' rules"
    )]
    StpInoutSrcMac { filter: FilterName, rule: usize },
}
