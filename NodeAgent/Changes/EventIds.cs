using System.Buffers.Binary;
using System.Security.Cryptography;

namespace NodeAgent.Changes;

/// <summary>
/// Event ids: UUID version 7 (the millisecond, then random bits), strictly increasing in the order events are
/// recorded, even within one millisecond (its 12 bits after the version count up), so that ordering by id is the
/// order of recording. Guid.CreateVersion7 alone is random within a millisecond.
/// </summary>
internal sealed class EventIds(TimeProvider time)
{
    private long _lastMillisecond = -1;
    private int _counter;

    public Guid Next()
    {
        var millisecond = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (millisecond <= _lastMillisecond)
        {
            millisecond = _lastMillisecond;
            if (++_counter > 0xFFF)
            {
                millisecond++;
                _counter = 0;
            }
        }
        else
        {
            _counter = 0;
        }

        _lastMillisecond = millisecond;
        Span<byte> bytes = stackalloc byte[16];
        RandomNumberGenerator.Fill(bytes[8..]);
        BinaryPrimitives.WriteInt64BigEndian(bytes, millisecond << 16);
        BinaryPrimitives.WriteUInt16BigEndian(bytes[6..], (ushort)(0x7000 | _counter));
        bytes[8] = (byte)(0x80 | (bytes[8] & 0x3F));
        return new Guid(bytes, bigEndian: true);
    }
}
