-- A chunk reads the latest reservation of each order its commands name: the open one, or the
-- expired one that makes a capture answer reservation_expired (sql/0007_hold_expiry.sql). One
-- index probe per order; without this index that read scanned every reservation.
CREATE INDEX reservations_by_order ON reservations (user_id, service_id, order_id, id);
