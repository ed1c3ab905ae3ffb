using ScaleBench;

var options = Options.Parse(args);
if (options is null)
{
    return 2;
}

// Stores write COPY rows synchronously into Npgsql's buffer, which blocks a pool thread when it flushes: with a
// thousand agents in one process, the pool must not have to grow its way out of that one thread at a time.
ThreadPool.GetMinThreads(out var workers, out var io);
ThreadPool.SetMinThreads(Math.Max(workers, 256), Math.Max(io, 256));

return await new Bench(options).RunAsync();
