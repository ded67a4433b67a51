//! A one-entry cache from a string to what was parsed from it. Warden keeps
//! a driver instance for the next call on the same connection, so the same
//! configuration JSON and username template arrive call after call; parsing
//! each once instead of every time is most of a call's work saved.

use std::cell::RefCell;
use std::rc::Rc;

pub struct Memo<V> {
    last: RefCell<Option<(String, Rc<V>)>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            last: RefCell::new(None),
        }
    }
}

impl<V> Memo<V> {
    /// The value for `key`: the remembered one if `key` is the last key
    /// seen, else `parse(key)`, remembered when it succeeds.
    pub fn get_or_parse<E>(&self, key: &str, parse: impl FnOnce(&str) -> Result<V, E>) -> Result<Rc<V>, E> {
        if let Some((k, v)) = self.last.borrow().as_ref()
            && k == key
        {
            return Ok(v.clone());
        }
        let value = Rc::new(parse(key)?);
        *self.last.borrow_mut() = Some((key.to_string(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_per_key_and_again_when_it_changes() {
        let memo = Memo::default();
        let mut calls = 0;
        let mut parse = |k: &str| -> Result<usize, ()> {
            calls += 1;
            Ok(k.len())
        };
        assert_eq!(*memo.get_or_parse("abc", &mut parse).expect("parsed"), 3);
        assert_eq!(*memo.get_or_parse("abc", &mut parse).expect("parsed"), 3);
        assert_eq!(*memo.get_or_parse("abcd", &mut parse).expect("parsed"), 4);
        assert_eq!(calls, 2);
    }

    #[test]
    fn failures_are_not_remembered() {
        let memo: Memo<usize> = Memo::default();
        assert!(memo.get_or_parse("x", |_| Err::<usize, _>("bad")).is_err());
        assert_eq!(*memo.get_or_parse("x", |k| Ok::<_, &str>(k.len())).expect("parsed"), 1);
    }
}
