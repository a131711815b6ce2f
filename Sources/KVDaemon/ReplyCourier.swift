import NIOCore
import Synchronization

/// Carries replies from the Raft loop's thread to the client connections' event loops. During
/// a loop iteration replies are only collected (no system call); when the iteration ends,
/// `deliver()` hands each event loop all of its connections' replies in one task, and each
/// connection then writes all of its replies with one flush. A wake-up of an event loop costs a
/// system call and a context switch, so this is one per event loop per iteration instead of one
/// per connection (or per reply).
///
/// A reply carried outside an iteration (by a connection refusing a request itself, or when the
/// loop stops) waits for the next `deliver()`; the loop calls it after every iteration and once
/// more when it stops.
final class ReplyCourier: Sendable {
    typealias Parcel = (connection: NIOLoopBound<ClientConnection>, sequence: UInt64, reply: Reply)

    private let parcels = Mutex<[ObjectIdentifier: (eventLoop: any EventLoop, parcels: [Parcel])]>([:])

    /// Queues `reply` to request `sequence` of `connection`; safe from any thread.
    func carry(_ reply: Reply, for sequence: UInt64, to connection: NIOLoopBound<ClientConnection>) {
        let eventLoop = connection.eventLoop
        parcels.withLock { parcels in
            parcels[ObjectIdentifier(eventLoop), default: (eventLoop, [])].parcels.append((connection, sequence, reply))
        }
    }

    /// Hands every queued reply to its connection's event loop: one task per event loop.
    func deliver() {
        let batches = parcels.withLock { parcels in
            defer { parcels.removeAll(keepingCapacity: true) }
            return Array(parcels.values)
        }
        for batch in batches {
            let parcels = batch.parcels
            batch.eventLoop.execute {
                var touched: [ObjectIdentifier: ClientConnection] = [:]
                for parcel in parcels {
                    let connection = parcel.connection.value
                    connection.complete(parcel.sequence, with: parcel.reply)
                    touched[ObjectIdentifier(connection)] = connection
                }
                for connection in touched.values { connection.writeReady() }
            }
        }
    }
}
