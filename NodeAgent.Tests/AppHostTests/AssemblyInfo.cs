// The local run starts PostgreSQL as the postgres user and reads /proc: these tests run on Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
