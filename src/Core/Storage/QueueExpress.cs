using System.Buffers.Binary;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Serverless.Core.Storage;

/// <summary>
/// Express delivery of a queue message: the message's own text, sealed, in the wake datagram
/// (<see cref="QueueWake"/>), so its receiver handles it without waiting for a poll to bring it. The
/// queue stays the truth: the same text is put on the queue as well, and whichever copy arrives second
/// is recognised as the other's twin (<see cref="ExpressTwins"/>) and only deleted. A datagram that is
/// lost, late, or cannot be opened is a plain wake, and the queued copy is handled as before.
/// </summary>
/// <remarks>
/// <para>
/// Every process makes a fresh P-256 key pair at start and keeps its private key in memory only; its
/// public key travels in its advertised wake address (<c>ip:port~key</c>), which reaches a peer only
/// through storage (an instance row, a task row) or a queued command: never through a datagram. Two
/// processes that know each other's addresses share an AES-256 key by ECDH, and a datagram is sealed
/// with AES-GCM under it: readable and forgeable by those two only. Its header (sender, time, queue) is
/// authenticated with it; a datagram older than <see cref="MaxAge"/>, or one already opened, is refused.
/// </para>
/// <para>
/// Layout: marker <c>0xE5</c> | version | flags | sender key id (8) | unix time ms (8) | queue name length |
/// queue name | nonce (12) | ciphertext | tag (16); the bytes before the nonce are the associated data.
/// </para>
/// </remarks>
public sealed class ExpressKeys : IDisposable
{
    public const byte Marker = 0xE5;
    private const byte Version = 1;
    private const byte EnqueuedFlag = 1;
    private const int NonceBytes = 12;
    private const int TagBytes = 16;
    private const int FixedHeader = 20; // marker, version, flags, key id, time, name length
    private const int PublicKeyBytes = 64;

    /// <summary>The largest datagram sent: fits one IPv4 datagram on any link without IP fragmentation worth worrying about on a LAN.</summary>
    public const int MaxDatagramBytes = 8 * 1024;

    /// <summary>How far a datagram's time may be from the receiver's clock (either way).</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);

    /// <summary>Peers remembered at most (a cluster's workers, or a worker's control planes); beyond it they are learned again.</summary>
    private const int MaxPeers = 4096;

    private static readonly byte[] KeyContext = "ecs-serverless queue express v1"u8.ToArray();

    private readonly ECDiffieHellman _own = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
    private readonly ulong _ownId;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Peer> _byPublicKey = new(StringComparer.Ordinal);
    private readonly Dictionary<ulong, Peer> _byId = [];
    private readonly Dictionary<UInt128, long> _opened = [];
    private readonly Queue<(long Expires, UInt128 Nonce)> _openedOrder = new();
    private readonly TimeProvider _time;

    public ExpressKeys(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        var point = _own.ExportParameters(includePrivateParameters: false).Q;
        byte[] publicKey = [.. point.X!, .. point.Y!];
        PublicKey = Base64Url.EncodeToString(publicKey);
        _ownId = IdOf(publicKey);
    }

    /// <summary>This process's public key (base64url of the P-256 point's X and Y), for its wake address.</summary>
    public string PublicKey { get; }

    /// <summary>Remembers a peer's public key (from a wake address read from storage or a queued command); false when it is not a P-256 point.</summary>
    public bool Learn(string publicKey)
    {
        lock (_gate)
        {
            if (_byPublicKey.ContainsKey(publicKey)) return true;
        }
        var peer = Derive(publicKey);
        if (peer is null) return false;
        lock (_gate)
        {
            if (_byPublicKey.Count >= MaxPeers)
            {
                _byPublicKey.Clear();
                _byId.Clear();
            }
            _byPublicKey[publicKey] = peer;
            _byId[peer.Id] = peer;
        }
        return true;
    }

    /// <summary>
    /// <paramref name="messageText"/> sealed for the peer with <paramref name="publicKey"/> (learned before), or null
    /// when that peer is unknown or the datagram would exceed <see cref="MaxDatagramBytes"/>.
    /// </summary>
    /// <param name="enqueued">Whether the text is already on the queue (the receiver then polls to collect that copy once it handled this one).</param>
    public byte[]? Seal(string publicKey, string queueName, string messageText, bool enqueued)
    {
        Peer? peer;
        lock (_gate) _byPublicKey.TryGetValue(publicKey, out peer);
        if (peer is null || queueName.Length > byte.MaxValue) return null;
        var textBytes = Encoding.UTF8.GetByteCount(messageText);
        var headerBytes = FixedHeader + queueName.Length;
        var total = headerBytes + NonceBytes + textBytes + TagBytes;
        if (total > MaxDatagramBytes) return null;

        var datagram = new byte[total];
        var span = datagram.AsSpan();
        span[0] = Marker;
        span[1] = Version;
        span[2] = enqueued ? EnqueuedFlag : (byte)0;
        BinaryPrimitives.WriteUInt64BigEndian(span[3..], _ownId);
        BinaryPrimitives.WriteInt64BigEndian(span[11..], _time.GetUtcNow().ToUnixTimeMilliseconds());
        span[19] = (byte)queueName.Length;
        Encoding.ASCII.GetBytes(queueName, span[FixedHeader..headerBytes]);
        var nonce = span.Slice(headerBytes, NonceBytes);
        RandomNumberGenerator.Fill(nonce);
        var ciphertext = span.Slice(headerBytes + NonceBytes, textBytes);
        Encoding.UTF8.GetBytes(messageText, ciphertext);
        using var aes = new AesGcm(peer.Key, TagBytes);
        aes.Encrypt(nonce, ciphertext, ciphertext, span[^TagBytes..], span[..headerBytes]);
        return datagram;
    }

    /// <summary>The queue a datagram names, read without opening it (for the plain wake it still is when it cannot be opened); null when it names none.</summary>
    public static string? QueueNameOf(ReadOnlySpan<byte> datagram)
    {
        if (datagram.Length < FixedHeader || datagram[0] != Marker) return null;
        var length = datagram[19];
        if (datagram.Length < FixedHeader + length) return null;
        var name = datagram.Slice(FixedHeader, length);
        return QueueWake.IsQueueName(name) ? Encoding.ASCII.GetString(name) : null;
    }

    /// <summary>
    /// Opens a datagram sealed for this process by a peer it knows: the queue it names, the message text and whether it
    /// is already queued. False for anything else: unknown sender, bad tag, too old or too new, or opened before.
    /// </summary>
    public bool TryOpen(ReadOnlySpan<byte> datagram, out string queueName, out string messageText, out bool enqueued)
    {
        queueName = messageText = "";
        enqueued = false;
        if (QueueNameOf(datagram) is not { } name || datagram[1] != Version) return false;
        var headerBytes = FixedHeader + name.Length;
        if (datagram.Length < headerBytes + NonceBytes + TagBytes) return false;
        var senderId = BinaryPrimitives.ReadUInt64BigEndian(datagram[3..]);
        Peer? peer;
        lock (_gate) _byId.TryGetValue(senderId, out peer);
        // Our own datagram sent back to us is not a peer's.
        if (peer is null || senderId == _ownId) return false;

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var sent = BinaryPrimitives.ReadInt64BigEndian(datagram[11..]);
        if (Math.Abs(now - sent) > (long)MaxAge.TotalMilliseconds) return false;

        var nonce = datagram.Slice(headerBytes, NonceBytes);
        var ciphertext = datagram[(headerBytes + NonceBytes)..^TagBytes];
        var plaintext = new byte[ciphertext.Length];
        try
        {
            using var aes = new AesGcm(peer.Key, TagBytes);
            aes.Decrypt(nonce, ciphertext, datagram[^TagBytes..], plaintext, datagram[..headerBytes]);
        }
        catch (CryptographicException)
        {
            return false;
        }
        if (!FirstOpening(BinaryPrimitives.ReadUInt128BigEndian([.. nonce, 0, 0, 0, 0]), now)) return false;
        try
        {
            messageText = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(plaintext);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
        queueName = name;
        enqueued = (datagram[2] & EnqueuedFlag) != 0;
        return true;
    }

    public void Dispose() => _own.Dispose();

    /// <summary>Whether this nonce was not opened within the last two <see cref="MaxAge"/>s (a replay is refused).</summary>
    private bool FirstOpening(UInt128 nonce, long now)
    {
        lock (_gate)
        {
            while (_openedOrder.TryPeek(out var oldest) && oldest.Expires < now)
            {
                _openedOrder.Dequeue();
                _opened.Remove(oldest.Nonce);
            }
            var expires = now + 2 * (long)MaxAge.TotalMilliseconds;
            if (!_opened.TryAdd(nonce, expires)) return false;
            _openedOrder.Enqueue((expires, nonce));
            return true;
        }
    }

    private Peer? Derive(string publicKey)
    {
        byte[] point;
        try
        {
            point = Base64Url.DecodeFromChars(publicKey);
        }
        catch (FormatException)
        {
            return null;
        }
        if (point.Length != PublicKeyBytes) return null;
        try
        {
            using var other = ECDiffieHellman.Create(new ECParameters
            {
                Curve = ECCurve.NamedCurves.nistP256,
                Q = new ECPoint { X = point[..32], Y = point[32..] },
            });
            return new Peer(IdOf(point), _own.DeriveKeyFromHash(other.PublicKey, HashAlgorithmName.SHA256, KeyContext, null));
        }
        catch (CryptographicException)
        {
            // Not a point on the curve.
            return null;
        }
    }

    private static ulong IdOf(ReadOnlySpan<byte> publicKey) => BinaryPrimitives.ReadUInt64BigEndian(SHA256.HashData(publicKey));

    private sealed record Peer(ulong Id, byte[] Key);
}

/// <summary>
/// The copies of one message that arrive twice, once express and once from the queue, told apart by the
/// hash of their text: the first is handled, the second waits for its outcome and is only deleted when the
/// first was handled to the end. Kept per consumer, for <see cref="ExpressedFor"/> (an express copy whose
/// queued twin has not come yet) and <see cref="QueuedFor"/> (a queued copy whose express twin may still come).
/// </summary>
public sealed class ExpressTwins(TimeProvider time)
{
    /// <summary>How long an express copy waits for its queued twin (which the receiver collects at its next poll).</summary>
    public static readonly TimeSpan ExpressedFor = TimeSpan.FromMinutes(10);

    /// <summary>How long a queued copy refuses a late express twin (a datagram older than <see cref="ExpressKeys.MaxAge"/> is refused anyway).</summary>
    public static readonly TimeSpan QueuedFor = TimeSpan.FromMinutes(1);

    private const int MaxEntries = 16_384;

    private readonly Lock _gate = new();
    private readonly Dictionary<UInt128, Entry> _entries = [];
    private readonly Queue<(DateTimeOffset Expires, UInt128 Key)> _order = new();

    public static UInt128 KeyOf(ReadOnlySpan<byte> messageText) => BinaryPrimitives.ReadUInt128BigEndian(SHA256.HashData(messageText));

    /// <summary>
    /// An express copy arrived: the completion its handler sets (true when it settled the message as done), or null when
    /// a copy of it was already taken (from the queue, or express before) and this one is dropped.
    /// </summary>
    public TaskCompletionSource<bool>? Expressed(UInt128 key)
    {
        lock (_gate)
        {
            Purge();
            if (_entries.ContainsKey(key)) return null;
            var handled = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            Add(key, new Entry(handled), ExpressedFor);
            return handled;
        }
    }

    /// <summary>
    /// A copy came from the queue: its express twin's outcome when one was taken, or null when none was. Either way
    /// another express copy is refused from now on (for <see cref="QueuedFor"/>).
    /// </summary>
    public Task<bool>? Queued(UInt128 key)
    {
        lock (_gate)
        {
            Purge();
            _entries.TryGetValue(key, out var entry);
            Add(key, new Entry(null), QueuedFor);
            return entry?.Handled?.Task;
        }
    }

    private void Add(UInt128 key, Entry entry, TimeSpan lifetime)
    {
        if (_entries.Count >= MaxEntries && _order.TryDequeue(out var oldest)) _entries.Remove(oldest.Key);
        _entries[key] = entry;
        _order.Enqueue((time.GetUtcNow() + lifetime, key));
    }

    private void Purge()
    {
        var now = time.GetUtcNow();
        // Entries expire in roughly the order they were added (two lifetimes): a short-lived one behind a long-lived
        // one waits for it, which only keeps it a little longer.
        while (_order.TryPeek(out var oldest) && oldest.Expires < now)
        {
            _order.Dequeue();
            _entries.Remove(oldest.Key);
        }
    }

    private sealed record Entry(TaskCompletionSource<bool>? Handled);
}
