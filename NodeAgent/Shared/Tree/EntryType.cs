namespace NodeAgent.Shared.Tree;

/// <summary>The kind of a directory entry, stored as the letter <c>find -printf %y</c> prints.</summary>
public enum EntryType : byte
{
    File = (byte)'f',
    Directory = (byte)'d',
    Symlink = (byte)'l',
    Fifo = (byte)'p',
    Socket = (byte)'s',
    CharDevice = (byte)'c',
    BlockDevice = (byte)'b',
    Unknown = (byte)'U',
}

internal static class EntryTypes
{
    public static EntryType FromMode(uint mode) => (mode & 0xF000) switch
    {
        0x8000 => EntryType.File,
        0x4000 => EntryType.Directory,
        0xA000 => EntryType.Symlink,
        0x1000 => EntryType.Fifo,
        0xC000 => EntryType.Socket,
        0x2000 => EntryType.CharDevice,
        0x6000 => EntryType.BlockDevice,
        _ => EntryType.Unknown,
    };
}
