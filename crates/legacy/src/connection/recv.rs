//! The receiving half of a legacy connection.
//!
//! This module owns what happens to each decoded packet: mission heads become
//! [`Event::MessageStarted`] (or [`Event::MessageRejected`] past a limit),
//! with responses matched to our pending requests; data is checked against
//! the announced length; cancels end a message. It also keeps, within
//! [`Limits::max_early_data`](crate::Limits::max_early_data), data that a
//! Python sender put on the wire before its head, and remembers which
//! incoming requests can still be answered.

use super::{InMsg, LegacyConnection, ENDED_MEMORY};
use crate::error::MessageError;
use crate::event::{Event, IncomingHead, MessageId};
use crate::packet::{MissionHead, Packet};
use std::collections::VecDeque;

impl LegacyConnection {
    pub(super) fn on_packet(&mut self, packet: Packet) {
        match packet {
            Packet::Mission(head) => self.on_mission(head),
            Packet::Data { extension, payload } => self.on_data(&extension, payload),
            Packet::Cancel { extension } => match self.incoming_ext.remove(&extension) {
                Some(id) => {
                    self.incoming.remove(&id);
                    self.mark_ended(extension);
                    self.forget_answerable(id);
                    self.events.push_back(Event::CancelledByPeer { id });
                }
                None => self.stats.ignored_cancels += 1,
            },
        }
    }

    fn on_mission(&mut self, mission: MissionHead) {
        let MissionHead {
            extension,
            length,
            info,
        } = mission;
        let is_response = info.is_response();
        let message_id = info.message_id().map(str::to_owned);
        let in_reply_to = match (&message_id, is_response) {
            (Some(mid), true) => self.pending.remove(mid),
            _ => None,
        };
        if let Some(req) = in_reply_to {
            self.pending_by_id.remove(&req);
        }
        let head = IncomingHead {
            route: info.route().map(str::to_owned),
            message_id,
            is_response,
            in_reply_to,
            length,
            extension,
            info,
        };
        let limits = self.config.limits;
        let reject = if let Some(old) = self.incoming_ext.remove(&head.extension) {
            self.incoming.remove(&old);
            self.forget_answerable(old);
            let error = MessageError::DuplicateMission {
                extension: head.extension.clone(),
            };
            self.events.push_back(Event::MessageFailed {
                id: old,
                error: error.clone(),
            });
            Some(error)
        } else if length > limits.max_message_len {
            Some(MessageError::TooLarge {
                declared: length,
                limit: limits.max_message_len,
            })
        } else if length > 0 && self.incoming.len() >= limits.max_incoming_messages {
            Some(MessageError::TooManyIncoming {
                limit: limits.max_incoming_messages,
            })
        } else {
            None
        };
        if let Some(error) = reject {
            self.drop_early(&head.extension);
            self.mark_ended(head.extension.clone());
            self.events
                .push_back(Event::MessageRejected { head, error });
            return;
        }
        self.ended.retain(|e| *e != head.extension);
        let id = self.alloc_id();
        if !head.is_response {
            if let Some(mid) = &head.message_id {
                self.remember_answerable(id, mid.clone());
            }
        }
        if length == 0 {
            // Python never completes an empty message; we deliver it.
            self.drop_early(&head.extension);
            self.events.push_back(Event::MessageStarted { id, head });
            self.events.push_back(Event::MessageFinished { id });
            return;
        }
        self.incoming_ext.insert(head.extension.clone(), id);
        self.incoming.insert(
            id,
            InMsg {
                extension: head.extension.clone(),
                length,
                received: 0,
            },
        );
        let extension = head.extension.clone();
        self.events.push_back(Event::MessageStarted { id, head });
        self.replay_early(&extension);
    }

    fn on_data(&mut self, extension: &str, payload: Vec<u8>) {
        let Some(&id) = self.incoming_ext.get(extension) else {
            if self.ended.iter().any(|e| e == extension) {
                // Rejected, cancelled or finished: Python ignores it too.
                self.stats.ignored_data_packets += 1;
            } else {
                self.keep_early(extension, payload);
            }
            return;
        };
        let Some(msg) = self.incoming.get_mut(&id) else {
            self.incoming_ext.remove(extension);
            self.stats.ignored_data_packets += 1;
            return;
        };
        if payload.is_empty() {
            return;
        }
        let received = msg.received + payload.len() as u64;
        if received > msg.length {
            let error = MessageError::Overflow {
                declared: msg.length,
                received,
            };
            self.incoming.remove(&id);
            self.incoming_ext.remove(extension);
            self.mark_ended(extension.to_owned());
            self.events.push_back(Event::MessageFailed { id, error });
            return;
        }
        msg.received = received;
        let done = received == msg.length;
        self.events.push_back(Event::Data { id, data: payload });
        if done {
            self.incoming.remove(&id);
            self.incoming_ext.remove(extension);
            self.mark_ended(extension.to_owned());
            self.events.push_back(Event::MessageFinished { id });
        }
    }

    pub(super) fn mark_ended(&mut self, extension: String) {
        if self.ended.len() >= ENDED_MEMORY {
            self.ended.pop_front();
        }
        self.ended.push_back(extension);
    }

    /// Keeps data of a mission not announced yet, within `max_early_data`.
    fn keep_early(&mut self, extension: &str, payload: Vec<u8>) {
        let max = self.config.limits.max_early_data;
        let cost = early_cost(extension, &payload);
        if cost > max {
            self.stats.ignored_data_packets += 1;
            return;
        }
        self.early_bytes += cost;
        self.early.push_back((extension.to_owned(), payload));
        while self.early_bytes > max {
            match self.early.pop_front() {
                Some((ext, old)) => {
                    self.early_bytes -= early_cost(&ext, &old);
                    self.stats.ignored_data_packets += 1;
                }
                None => break,
            }
        }
    }

    fn take_early(&mut self, extension: &str) -> Vec<Vec<u8>> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.early.len());
        for (ext, data) in self.early.drain(..) {
            if ext == extension {
                self.early_bytes -= early_cost(&ext, &data);
                taken.push(data);
            } else {
                kept.push_back((ext, data));
            }
        }
        self.early = kept;
        taken
    }

    fn drop_early(&mut self, extension: &str) {
        let dropped = self.take_early(extension).len();
        self.stats.ignored_data_packets += dropped as u64;
    }

    /// Delivers data that arrived before the head of `extension`.
    fn replay_early(&mut self, extension: &str) {
        if self.early.is_empty() {
            return;
        }
        for data in self.take_early(extension) {
            self.stats.early_data_packets += 1;
            self.on_data(extension, data);
        }
    }

    fn remember_answerable(&mut self, id: MessageId, message_id: String) {
        let max = self.config.max_answerable;
        while self.answerable.len() >= max.max(1) {
            match self.answerable_order.pop_front() {
                Some(old) => {
                    self.answerable.remove(&old);
                }
                None => break,
            }
        }
        // Drop ids already answered so the order queue stays bounded.
        if self.answerable_order.len() >= 2 * max.max(1) {
            let live = &self.answerable;
            self.answerable_order.retain(|i| live.contains_key(i));
        }
        self.answerable.insert(id, message_id);
        self.answerable_order.push_back(id);
    }

    pub(super) fn forget_answerable(&mut self, id: MessageId) {
        self.answerable.remove(&id);
    }
}

/// Bookkeeping of one early data entry besides its bytes (two heap blocks and a slot).
const EARLY_ENTRY_OVERHEAD: usize = 64;

/// What one early data entry counts against `Limits::max_early_data`: its payload, its
/// mission id and the entry itself, so that one-byte packets cannot hold many times
/// the limit in memory.
fn early_cost(extension: &str, payload: &[u8]) -> usize {
    payload.len() + extension.len() + EARLY_ENTRY_OVERHEAD
}
