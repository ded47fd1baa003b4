//! Ordered maps and sets for the handful of entries one port has in the
//! kept [`crate::KernelState`]: a sorted vector each.
//!
//! The daemon keeps the kernel state between operations, one
//! [`crate::kernel::PortObjects`] per port. As `BTreeMap`s and
//! `BTreeSet`s, its four to ten entries cost a whole B-tree node each
//! (room for eleven): about 4 KB per port, half the daemon's memory per
//! binding (issue 22 item 5). A sorted vector holds them in their own
//! size and iterates in the same order, so plans stay the same.

use std::borrow::Borrow;
use std::ops::Index;

/// A map kept as a vector sorted by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        VecMap {
            entries: Vec::new(),
        }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    fn find<Q: Ord + ?Sized>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.entries.binary_search_by(|(k, _)| k.borrow().cmp(key))
    }

    pub fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    /// Sets `key` to `value`; returns the value it had.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// The value of `key`, inserted as the default when missing.
    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (key, V::default()));
                i
            }
        };
        &mut self.entries[i].1
    }
}

impl<K, V> VecMap<K, V> {
    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Frees the room kept for more entries (a kept map does not grow).
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a, K, V> IntoIterator for &'a VecMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl<K: Ord + Borrow<Q>, Q: Ord + ?Sized, V> Index<&Q> for VecMap<K, V> {
    type Output = V;

    /// # Panics
    /// If `key` is not in the map.
    fn index(&self, key: &Q) -> &V {
        self.get(key).expect("no entry for this key")
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for VecMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = VecMap::default();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

/// A set kept as a sorted vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecSet<T> {
    items: Vec<T>,
}

impl<T> Default for VecSet<T> {
    fn default() -> Self {
        VecSet { items: Vec::new() }
    }
}

impl<T: Ord> VecSet<T> {
    pub fn contains<Q: Ord + ?Sized>(&self, item: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.items
            .binary_search_by(|t| t.borrow().cmp(item))
            .is_ok()
    }

    /// Adds `item`; false if it was there.
    pub fn insert(&mut self, item: T) -> bool {
        match self.items.binary_search(&item) {
            Ok(_) => false,
            Err(i) => {
                self.items.insert(i, item);
                true
            }
        }
    }

    /// The items not in `other`, in order.
    pub fn difference<'a>(&'a self, other: &'a VecSet<T>) -> impl Iterator<Item = &'a T> {
        self.items.iter().filter(|t| !other.contains(*t))
    }
}

impl<T> VecSet<T> {
    /// Items in order.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Frees the room kept for more items (a kept set does not grow).
    pub fn shrink_to_fit(&mut self) {
        self.items.shrink_to_fit();
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<'a, T> IntoIterator for &'a VecSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl<T: Ord> FromIterator<T> for VecSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut items: Vec<T> = iter.into_iter().collect();
        items.sort();
        items.dedup();
        VecSet { items }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    #[test]
    fn the_map_holds_and_orders_as_a_btreemap() {
        let pairs = [(3, "c"), (1, "a"), (2, "b"), (1, "z")];
        let mut map = VecMap::default();
        let mut tree = BTreeMap::new();
        for (k, v) in pairs {
            assert_eq!(map.insert(k, v), tree.insert(k, v));
        }
        assert!(map.iter().eq(tree.iter()));
        assert_eq!(map.get(&1), Some(&"z"));
        assert_eq!(map.get(&4), None);
        *map.get_or_default(4) = "d";
        assert_eq!(map[&4], "d");
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    #[test]
    fn the_set_holds_and_orders_as_a_btreeset() {
        let set: VecSet<u8> = [5, 1, 3, 1].into_iter().collect();
        let tree: BTreeSet<u8> = [5, 1, 3, 1].into_iter().collect();
        assert!(set.iter().eq(tree.iter()));
        let mut other = VecSet::default();
        assert!(other.insert(3));
        assert!(!other.insert(3));
        assert_eq!(set.difference(&other).collect::<Vec<_>>(), [&1, &5]);
        assert!(set.contains(&5) && !set.contains(&4));
    }
}
