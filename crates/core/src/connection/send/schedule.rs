//! The scheduler: which outgoing message's frame goes next (see the parent module's
//! docs), and the credit frames that make blocked messages sendable again.

use super::super::Connection;
use crate::codes::Urgency;
use alloc::vec::Vec;

impl Connection {
    /// Puts message `id` in its urgency ring if it can send now (one lookup: this
    /// runs for every message started).
    pub(in crate::connection) fn schedule(&mut self, id: u64) {
        if self.peer.is_none() {
            return;
        }
        let send = &mut self.send;
        let conn_credit = send.conn_sent < send.peer_max_data;
        let Some(o) = send.messages.get_mut(id) else {
            return;
        };
        if o.scheduled {
            return;
        }
        if !o.sendable(id, send.peer_max_messages, conn_credit) {
            // Data written while the connection credit is spent must still come back
            // when MAX_DATA arrives (bench `bulk8` stalled without this).
            if o.conn_blocked() && !o.in_conn_blocked {
                o.in_conn_blocked = true;
                send.conn_blocked[o.urgency.get() as usize].push_back(id);
            }
            return;
        }
        o.scheduled = true;
        send.rings[o.urgency.get() as usize].push_back(id);
    }

    pub(in crate::connection) fn reschedule_all(&mut self) {
        for id in self.send.outgoing_ids() {
            self.schedule(id);
        }
    }

    pub(in crate::connection) fn handle_max_data(&mut self, max: u64) {
        if max > self.send.peer_max_data {
            self.send.peer_max_data = max;
            self.wake_conn_blocked();
        }
    }

    /// Puts messages waiting for connection credit back in their rings, most urgent
    /// and longest waiting first, until what they can send covers the credit there is
    /// (each counted for at most one frame, so that several share it round robin).
    /// Not all of them: with thousands waiting (many large messages queued), waking
    /// every one at each MAX_DATA made each credit frame cost time linear in them.
    /// Those woken but still short of credit when their turn comes go to the back of
    /// the list (`unschedule`); `poll_message_frame` wakes more if the ones woken
    /// leave credit unused. Returns whether it put any message in a ring.
    fn wake_conn_blocked(&mut self) -> bool {
        let frame = self.send_frame_size() as u64;
        let send = &mut self.send;
        let mut room = send.peer_max_data.saturating_sub(send.conn_sent);
        let mut woke = false;
        for class in 0..Urgency::CLASSES {
            while room > 0 {
                let Some(id) = send.conn_blocked[class].pop_front() else {
                    break;
                };
                let Some(o) = send.messages.get_mut(id) else {
                    continue;
                };
                o.in_conn_blocked = false;
                if o.scheduled || !o.conn_blocked() {
                    // Already in a ring, or waiting for something else now.
                    continue;
                }
                let can = (o.queued as u64).min(o.credit - o.offset).min(frame).max(1);
                o.scheduled = true;
                send.rings[class].push_back(id);
                room = room.saturating_sub(can);
                woke = true;
            }
        }
        woke
    }

    pub(in crate::connection) fn handle_max_message_data(&mut self, id: u64, max: u64) {
        if let Some(o) = self.send.messages.get_mut(id) {
            if max > o.credit && o.head.is_none() {
                o.credit = max;
                self.schedule(id);
            }
        }
    }

    pub(in crate::connection) fn handle_max_messages(&mut self, max: u64) {
        if max > self.send.peer_max_messages {
            self.send.peer_max_messages = max;
            // `unstarted` is ascending: only ids up to the new limit can have become
            // sendable. (`schedule` leaves `unstarted` alone.)
            let mut k = 0;
            while let Some(&id) = self.send.unstarted.get(k).filter(|&&id| id <= max) {
                self.schedule(id);
                k += 1;
            }
        }
    }

    /// Takes a message that cannot send now out of the rings; one waiting only for
    /// connection credit is remembered so that MAX_DATA brings it back.
    fn unschedule(&mut self, id: u64) {
        let Some(o) = self.send.messages.get_mut(id) else {
            return;
        };
        o.scheduled = false;
        if o.conn_blocked() && !o.in_conn_blocked {
            o.in_conn_blocked = true;
            self.send.conn_blocked[o.urgency.get() as usize].push_back(id);
        }
    }

    /// Emits the next message frame, if any message can send. Returns whether it did.
    pub(in crate::connection) fn poll_message_frame(&mut self, buf: &mut Vec<u8>) -> bool {
        if self.poll_rings(buf) {
            return true;
        }
        // Nothing in the rings, but connection credit may be left over: the messages
        // woken for it ended, were cancelled or had less to send than counted, or a
        // loss refunded some. Wake more of those waiting rather than stall them.
        let credit_left = self.send.conn_sent < self.send.peer_max_data;
        credit_left && self.wake_conn_blocked() && self.poll_rings(buf)
    }

    fn poll_rings(&mut self, buf: &mut Vec<u8>) -> bool {
        for ring in 0..Urgency::CLASSES {
            while let Some(id) = self.send.rings[ring].pop_front() {
                let Some(o) = self.send.messages.get(id) else {
                    continue;
                };
                if !self.send.sendable(id, o) {
                    self.unschedule(id);
                    continue;
                }
                // START frames leave in id order.
                if let Some(&first) = self.send.unstarted.front() {
                    if first < id {
                        self.send.rings[ring].push_front(id);
                        self.emit_message_frame(first, true, buf);
                        return true;
                    }
                }
                if self.emit_message_frame(id, false, buf) {
                    // That frame ended it (the usual case for a small message).
                    return true;
                }
                match self.send.messages.get(id) {
                    None => {}
                    Some(o) if self.send.sendable(id, o) => self.send.rings[ring].push_back(id),
                    // Out of connection credit: it must come back with MAX_DATA.
                    Some(_) => self.unschedule(id),
                }
                return true;
            }
        }
        false
    }
}
