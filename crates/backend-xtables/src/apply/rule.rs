//! One rule of a kept table in one allocation.
//!
//! The tables are kept between operations (see `kept`), for every port:
//! a rule as a vector of `String`s cost an allocation per argument and
//! made the kept tables several times the size of their text (issue 22
//! item 5). A [`Rule`] holds its arguments in one string, each followed
//! by a NUL: the words come from the kernel's C strings or from restore
//! input, neither of which can carry a NUL, so the packing is exact.

use std::fmt;

/// Ends each argument in [`Rule`]'s text.
const END: char = '\0';

/// A rule's arguments after `-A CHAIN`, as argv.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Rule(Box<str>);

/// An argument held a NUL, which no table rule can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NulInArgument;

impl Rule {
    /// The rule of these arguments.
    pub fn new<S: AsRef<str>>(words: &[S]) -> Result<Rule, NulInArgument> {
        let mut text = String::with_capacity(words.iter().map(|w| w.as_ref().len() + 1).sum());
        for word in words {
            let word = word.as_ref();
            if word.contains(END) {
                return Err(NulInArgument);
            }
            text.push_str(word);
            text.push(END);
        }
        Ok(Rule(text.into_boxed_str()))
    }

    /// Its arguments in order.
    pub fn words(&self) -> impl Iterator<Item = &str> + Clone {
        self.0.split_terminator(END)
    }

    /// The length of its arguments with one separator each.
    pub(crate) fn packed_len(&self) -> usize {
        self.0.len()
    }

    /// Its arguments as argv.
    pub fn to_words(&self) -> Vec<String> {
        self.words().map(str::to_owned).collect()
    }

    /// The chain the rule jumps or goes to (`-j X` / `-g X`), if any.
    ///
    /// One pass over the packed text's bytes: planning asks this of every
    /// hook rule, 2000 of them beside 1000 ports, in each operation.
    pub fn target(&self) -> Option<&str> {
        let text = &*self.0;
        let mut start = 0;
        let mut after_flag = false;
        for (at, byte) in text.bytes().enumerate() {
            if byte == END as u8 {
                let word = &text[start..at];
                if after_flag {
                    return Some(word);
                }
                after_flag = matches!(word, "-j" | "-g" | "--jump" | "--goto");
                start = at + 1;
            }
        }
        None
    }

    /// The rule with its jumps to `from` going to `to` (a renamed chain).
    pub fn retargeted(&self, from: &str, to: &str) -> Rule {
        let mut words = self.to_words();
        for i in 1..words.len() {
            let jumps = matches!(words[i - 1].as_str(), "-j" | "-g" | "--jump" | "--goto");
            if jumps && words[i] == from {
                words[i] = to.to_owned();
            }
        }
        Rule::new(&words).expect("the words came from a rule and `to` from restore input")
    }

    /// Whether its arguments are `words`.
    pub fn is<S: AsRef<str>>(&self, words: &[S]) -> bool {
        self.words().eq(words.iter().map(AsRef::as_ref))
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.words()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_come_back_as_given_empty_ones_too() {
        for words in [
            vec![],
            vec![""],
            vec!["-j", "RETURN"],
            vec!["--comment", "say \"hi\" there", "", "-j", "DROP"],
        ] {
            let rule = Rule::new(&words).unwrap();
            assert_eq!(rule.to_words(), words);
            assert!(rule.is(&words));
        }
        assert_ne!(Rule::new(&[""]).unwrap(), Rule::new::<&str>(&[]).unwrap());
        assert_eq!(Rule::new(&["a\0b"]), Err(NulInArgument));
    }

    #[test]
    fn target_and_retargeting_follow_jumps_only() {
        let rule =
            Rule::new(&["-m", "comment", "--comment", "FJ-vnet0", "-j", "FJ-vnet0"]).unwrap();
        assert_eq!(rule.target(), Some("FJ-vnet0"));
        let renamed = rule.retargeted("FJ-vnet0", "FI-vnet0");
        assert!(renamed.is(&["-m", "comment", "--comment", "FJ-vnet0", "-j", "FI-vnet0"]));
        assert_eq!(Rule::new(&["-p", "tcp"]).unwrap().target(), None);
        assert_eq!(Rule::new(&["-j"]).unwrap().target(), None);
    }

    #[test]
    fn the_target_is_the_word_after_the_first_jump_flag_word() {
        // As the words read one by one.
        let by_words = |words: &[&str]| {
            let at = words
                .iter()
                .position(|w| matches!(*w, "-j" | "-g" | "--jump" | "--goto"))?;
            words.get(at + 1).map(|w| w.to_string())
        };
        for words in [
            &["-i", "vnet0", "-j", "libvirt-I-vnet0"][..],
            &["-o", "x-j", "-jx", "--goto", "G", "-j", "J"],
            &["--comment", "-g", "-j", "C"],
            &["", "-j", ""],
            &["-j-j", "-j"],
            &["--jump", "A", "-g", "B"],
            &["-m", "physdev", "--physdev-in", "vnet-j", "-g", "FI-vnet-j"],
            &[],
        ] {
            let rule = Rule::new(words).unwrap();
            assert_eq!(
                rule.target().map(String::from),
                by_words(words),
                "{words:?}"
            );
        }
    }
}
