//! What a WebSocket remembers of its last answered response, so the next message may continue
//! it by `previous_response_id` with only its new input (the Codex CLI does so): the response's
//! id and its whole conversation, the input it was asked with followed by the items it output.
//! Items are kept as the bytes they came in, shared with the bodies they were cut from.

use bytes::Bytes;

use crate::jsonscan;

/// The last answered response of one socket, and the one being answered.
#[derive(Debug, Default)]
pub struct History {
    /// The last completed response: its id and its items.
    last: Option<(String, Vec<Bytes>)>,
    /// The response under way: its input, then its output so far.
    pending: Vec<Bytes>,
}

impl History {
    /// The items of response `id`, when it is the last one answered here.
    #[must_use]
    pub fn items_of(&self, id: &str) -> Option<&[Bytes]> {
        self.last
            .as_ref()
            .filter(|(last, _)| last == id)
            .map(|(_, items)| items.as_slice())
    }

    /// The bytes `items` take, for sizing a body.
    #[must_use]
    pub fn len_hint(&self, items: &[Bytes]) -> usize {
        items.iter().map(|i| i.len() + 1).sum()
    }

    /// A request with this (full) body is being answered: its input items start the pending
    /// conversation.
    pub fn begin(&mut self, body: &Bytes) {
        self.pending.clear();
        let Some(range) = jsonscan::field_range(body, "input") else {
            return;
        };
        let input = body.slice(range);
        if let Some(items) = jsonscan::items(&input) {
            self.pending
                .extend(items.map_while(Result::ok).map(|r| input.slice(r)));
        }
    }

    /// The response under way output this item.
    pub fn output(&mut self, item: Bytes) {
        self.pending.push(item);
    }

    /// The response under way completed as `id`: it is now the one a message may continue.
    pub fn answered(&mut self, id: String) {
        self.last = Some((id, std::mem::take(&mut self.pending)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_answered_response_can_be_continued() {
        let mut history = History::default();
        history.begin(&Bytes::from_static(
            br#"{"model":"m","input":[{"a":1}, {"b":2}]}"#,
        ));
        history.output(Bytes::from_static(br#"{"c":3}"#));
        assert!(history.items_of("resp_1").is_none(), "not answered yet");
        history.answered("resp_1".to_owned());
        let items: Vec<&[u8]> = history
            .items_of("resp_1")
            .unwrap()
            .iter()
            .map(|b| &b[..])
            .collect();
        assert_eq!(items, [&br#"{"a":1}"#[..], br#"{"b":2}"#, br#"{"c":3}"#]);

        history.begin(&Bytes::from_static(br#"{"input":[]}"#));
        history.answered("resp_2".to_owned());
        assert!(history.items_of("resp_1").is_none());
        assert_eq!(history.items_of("resp_2").map(<[Bytes]>::len), Some(0));
    }
}
