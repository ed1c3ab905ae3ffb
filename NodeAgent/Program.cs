// Node Monitor's agent: which capabilities run. Each lives in its own folder behind one ICapability (see README.md
// here); the host, the endpoints, the database and the delivery pipeline are the shared base (Shared/).
using NodeAgent.Changes;
using NodeAgent.Insight;
using NodeAgent.Inventory;
using NodeAgent.Processes;
using NodeAgent.Shared.Hosting;

return await AgentHost.RunAsync(args,
    new InventoryCapability(),
    new ChangesCapability(),
    new ProcessesCapability(),
    new InsightCapability());
