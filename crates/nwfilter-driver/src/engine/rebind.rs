//! Replacing several ports' bindings at once: a virtual network whose
//! `<filterref>` changed gives all its ports the new filter together, all
//! or nothing, as redefining a filter rebuilds its users.

use host_io::Runner;
use nwfilter_model::Binding;

use super::{compile, Engine, EngineError};
use crate::port::PortRules;

impl<R: Runner> Engine<R> {
    /// Replaces the stored bindings of the ports of `new` (each must have
    /// one). Every new binding is compiled first (with the port's learned
    /// addresses), then all their rules go to the kernel in one batch that
    /// applies entirely or not at all; only then are the files replaced.
    /// A port whose address is still being learned keeps the learner's
    /// rules, and gets its new binding's when the address is known.
    pub fn rebind(&self, new: &[Binding]) -> Result<(), EngineError> {
        let mut state = self.lock();
        let mut rulesets = Vec::new();
        for binding in new {
            let port = binding.portdev.as_str();
            if self.bindings.get(port)?.is_none() {
                return Err(crate::Error::NoSuchBinding(port.to_owned()).into());
            }
            match self.compile_for(binding, state.backend)? {
                PortRules::Rules(rules) => rulesets.push(rules),
                PortRules::AwaitingIp(_) if state.foreign.contains_key(&binding.portdev) => {}
                PortRules::AwaitingIp(need) => {
                    return Err(compile::needs_ip(&self.effective(binding), need))
                }
            }
        }
        self.apply_all(&mut state, rulesets, false)?;
        for binding in new {
            self.bindings.replace(binding)?;
        }
        Ok(())
    }
}
