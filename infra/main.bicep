// The ECS-compatible control plane on Azure: Storage (Tables + Queues), Key Vault (RBAC) with the
// storage connection string and the SigV4 access keys, the Functions app (Linux Elastic Premium,
// .NET 10 isolated), an optional scale set of Docker worker hosts and an optional scale set of
// load balancer data plane hosts (the ELBv2 listeners).
//
//   az deployment group create -g <group> -n ecs -f infra/main.bicep \
//     -p ecsAccessKeys='AKIA...:<secret>' workerSshPublicKey="$(cat ~/.ssh/id_ed25519.pub)"
//
// See infra/README.md for every parameter, the deployment steps and what this does not cover.
targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------
// Naming and placement
// ---------------------------------------------------------------------------------------------

@description('Azure region for every resource. Default: the resource group\'s.')
param location string = resourceGroup().location

@description('Short lowercase prefix of every resource name (letters and digits). A hash of the resource group id is appended, so names stay globally unique.')
@minLength(2)
@maxLength(8)
param namePrefix string = 'ecs'

@description('Tags put on every resource.')
param tags object = {}

// ---------------------------------------------------------------------------------------------
// Control plane settings (local.settings.sample.json)
// ---------------------------------------------------------------------------------------------

@description('Ecs__Region: the region in every ARN and the region clients sign requests for (AWS CLI --region).')
param ecsRegion string = 'us-east-1'

@description('Ecs__AccountId: the 12-digit account id in every ARN.')
@minLength(12)
@maxLength(12)
param ecsAccountId string = '000000000000'

@description('Ecs__AccessKeys: SigV4 credentials, ACCESS_KEY_ID:SECRET pairs separated by ";". Stored only in Key Vault.')
@secure()
param ecsAccessKeys string

@description('Deploy__WebhookSecrets: the deploy webhook\'s HMAC secrets, separated by ";" (two during a rotation). Stored only in Key Vault. Empty: no secret, and POST /deploy refuses every delivery.')
@secure()
param deployWebhookSecrets string = ''

@description('Ecs__MaxRequestBodyBytes: request bodies above this are refused before parsing.')
@minValue(1024)
param ecsMaxRequestBodyBytes int = 1048576

@description('Ecs__StoragePrefix: prefix of every table name (lets several deployments share one storage account). Queues keep their names.')
param ecsStoragePrefix string = ''

@description('Ecs__AgentHeartbeatSeconds (and Worker__HeartbeatSeconds on the worker hosts).')
@minValue(1)
param agentHeartbeatSeconds int = 20

@description('Ecs__AgentDisconnectedAfterSeconds: a worker silent this long shows agentConnected: false and gets no new tasks.')
@minValue(1)
param agentDisconnectedAfterSeconds int = 60

@description('Ecs__AgentLostAfterSeconds: after this long without a heartbeat a worker\'s tasks are stopped and replaced elsewhere.')
@minValue(1)
param agentLostAfterSeconds int = 180

@description('Ecs__StoppedTaskRetentionMinutes: how long a STOPPED task stays describable before the retention sweep deletes it (ECS: about an hour).')
@minValue(1)
param stoppedTaskRetentionMinutes int = 60

// ---------------------------------------------------------------------------------------------
// Platform
// ---------------------------------------------------------------------------------------------

@description('Redundancy of the storage account that holds all state (Tables) and messages (Queues).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param storageSku string = 'Standard_LRS'

@description('Elastic Premium plan size of the Functions app.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param functionPlanSku string = 'EP1'

@description('Always-ready instances of the Functions app (Elastic Premium keeps at least one).')
@minValue(1)
@maxValue(20)
param functionMinimumInstances int = 1

@description('Largest number of instances the Functions app scales out to.')
@minValue(1)
@maxValue(100)
param functionMaximumInstances int = 20

@description('Deploy Log Analytics + Application Insights (Entra ID ingestion, no instrumentation key auth) and wire the Functions app to it.')
param deployApplicationInsights bool = true

@description('Key Vault purge protection: a deleted vault or secret cannot be purged before the retention period ends. Once on it cannot be turned off, and a deleted vault name stays taken for that period; turn it off only for throwaway deployments.')
param keyVaultPurgeProtection bool = true

@description('Days a deleted Key Vault (and deleted secrets) can be recovered.')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteRetentionDays int = 7

@description('Optional object id of a user or group that publishes worker packages: it gets Storage Blob Data Contributor on the worker package container. Empty: none.')
param operatorPrincipalId string = ''

@description('Public IP addresses or CIDR ranges (e.g. 203.0.113.7 or 203.0.113.0/24) let through the Storage and Key Vault firewalls, for operators who upload worker packages or manage secrets. Everything else reaches them only from the VNet.')
param operatorIpRanges array = []

@description('Type of operatorPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// ---------------------------------------------------------------------------------------------
// Worker hosts
// ---------------------------------------------------------------------------------------------

@description('Deploy the worker scale set (the VNet, NSG and NAT gateway are always deployed: the Functions app is in the VNet too). False: control plane only; workers elsewhere need their address in operatorIpRanges and an identity with the worker\'s data roles (modules/storage.bicep).')
param deployWorkerHosts bool = true

@description('Number of worker VMs. 0 deploys the scale set empty; scale it once the worker package is uploaded.')
@minValue(0)
@maxValue(1000)
param workerCount int = 0

@description('VM size of the worker hosts (Trusted Launch capable; Gen2).')
param workerVmSize string = 'Standard_D2s_v5'

@description('OS disk size of the worker hosts in GiB (images and container layers live there).')
@minValue(30)
@maxValue(1024)
param workerOsDiskSizeGB int = 64

@description('Worker__Cluster: the ECS cluster the worker hosts register with. Create it with aws ecs create-cluster.')
param workerCluster string = 'default'

@description('Worker__CapacityProvider of the worker hosts. Non-empty: the scale set is the worker pool workerPoolName of that capacity provider (create it with autoScalingGroupArn ...:autoScalingGroup:...:autoScalingGroupName/<workerPoolName> and managed scaling), and managed scaling resizes the scale set through Azure Resource Manager with the Functions app\'s identity (Virtual Machine Contributor on the scale set alone).')
param workerCapacityProvider string = ''

@description('Name of the worker pool the scale set is (the Auto Scaling group name in the capacity provider\'s autoScalingGroupArn).')
param workerPoolName string = 'ecs-workers'

@description('Smallest and largest size managed scaling may give the scale set.')
@minValue(0)
param workerPoolMinSize int = 0
@minValue(1)
@maxValue(1000)
param workerPoolMaxSize int = 10

@description('Admin user of the worker and data plane hosts (SSH key only, no password).')
param workerAdminUsername string = 'azureuser'

@description('SSH public key (OpenSSH format) of workerAdminUsername, on the worker and the data plane hosts. Required when deployWorkerHosts or deployLoadBalancerHosts is true.')
param workerSshPublicKey string = ''

@description('Where the hosts download the published worker (a .tar.gz of dotnet publish src/Worker). Empty: the blob worker-packages/serverless-worker.tar.gz in this deployment\'s storage account, read with the hosts\' managed identity. Any other URL is fetched without credentials (use a SAS URL or a public release).')
param workerPackageUrl string = ''

@description('.NET channel of the ASP.NET Core runtime installed on the worker hosts (the worker targets net10.0).')
param workerDotnetChannel string = '10.0'

@description('Address space of the VNet (the worker hosts\' subnet and the Functions app\'s integration subnet).')
param workerVnetAddressPrefix string = '10.60.0.0/16'

@description('Subnet of the worker hosts, inside workerVnetAddressPrefix.')
param workerSubnetPrefix string = '10.60.0.0/20'

@description('VNet integration subnet of the Functions app, inside workerVnetAddressPrefix (/26 or larger for Elastic Premium scale-out).')
param functionSubnetPrefix string = '10.60.16.0/24'

// ---------------------------------------------------------------------------------------------
// Load balancer data plane hosts (src/LoadBalancer: the ELBv2 listeners)
// ---------------------------------------------------------------------------------------------

@description('Deploy the data plane scale set and its identity (its subnet is always deployed). False: ELBv2 calls are answered but no listener serves in Azure.')
param deployLoadBalancerHosts bool = true

@description('Number of data plane VMs. 0 deploys the scale set empty; scale it once the data plane package is uploaded. Each VM serves every listener.')
@minValue(0)
@maxValue(100)
param loadBalancerCount int = 0

@description('VM size of the data plane hosts (Trusted Launch capable; Gen2).')
param loadBalancerVmSize string = 'Standard_D2s_v5'

@description('TCP ports or ranges (strings: 80, 8000-8099) that listeners may use, opened to loadBalancerSourceRanges.')
param loadBalancerListenerPorts array = [
  '80'
]

@description('Addresses, CIDR ranges or service tags (e.g. Internet) that reach the listener ports; non-empty also gives each data plane VM a public IP. Empty: listeners are reached from the VNet only (an internal load balancer).')
param loadBalancerSourceRanges array = []

@description('LoadBalancer__WakePort: UDP port the data plane takes the control plane\'s configuration wakes on, at its private IP.')
@minValue(1024)
@maxValue(65535)
param loadBalancerWakePort int = 7400

@description('Subnet of the data plane hosts, inside workerVnetAddressPrefix.')
param loadBalancerSubnetPrefix string = '10.60.17.0/24'

@description('Where the hosts download the published data plane (a .tar.gz of dotnet publish src/LoadBalancer). Empty: the blob worker-packages/serverless-loadbalancer.tar.gz in this deployment\'s storage account, read with the hosts\' managed identity.')
param loadBalancerPackageUrl string = ''

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------

var suffix = uniqueString(resourceGroup().id)
var prefix = toLower(namePrefix)
var names = {
  storage: take('st${replace(prefix, '-', '')}${suffix}', 24)
  keyVault: take('kv-${prefix}-${suffix}', 24)
  plan: 'plan-${prefix}-${suffix}'
  functionApp: 'func-${prefix}-${suffix}'
  functionIdentity: 'id-${prefix}-func-${suffix}'
  workerIdentity: 'id-${prefix}-worker-${suffix}'
  loadBalancerIdentity: 'id-${prefix}-lb-${suffix}'
  loadBalancerPrefix: '${prefix}-lb-${suffix}'
  logAnalytics: 'log-${prefix}-${suffix}'
  appInsights: 'appi-${prefix}-${suffix}'
  workerPrefix: '${prefix}-worker-${suffix}'
  networkPrefix: '${prefix}-${suffix}'
}
var contentShareName = take(toLower('${names.functionApp}-content'), 63)
var workerPackageContainer = 'worker-packages'
var workerPackageBlob = 'serverless-worker.tar.gz'
var loadBalancerPackageBlob = 'serverless-loadbalancer.tar.gz'

// ---------------------------------------------------------------------------------------------
// Identities: one for the Functions app (Key Vault references), one for the worker hosts
// ---------------------------------------------------------------------------------------------

resource functionIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: names.functionIdentity
  location: location
  tags: tags
}

resource workerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = if (deployWorkerHosts) {
  name: names.workerIdentity
  location: location
  tags: tags
}

resource loadBalancerIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = if (deployLoadBalancerHosts) {
  name: names.loadBalancerIdentity
  location: location
  tags: tags
}

// ---------------------------------------------------------------------------------------------
// Modules
// ---------------------------------------------------------------------------------------------

module network 'modules/network.bicep' = {
  name: 'network'
  params: {
    namePrefix: names.networkPrefix
    location: location
    tags: tags
    addressPrefix: workerVnetAddressPrefix
    functionSubnetPrefix: functionSubnetPrefix
    workerSubnetPrefix: workerSubnetPrefix
    loadBalancerSubnetPrefix: loadBalancerSubnetPrefix
    listenerPorts: loadBalancerListenerPorts
    listenerSourceRanges: loadBalancerSourceRanges
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: names.storage
    location: location
    tags: tags
    sku: storageSku
    contentShareName: contentShareName
    workerPackageContainer: workerPackageContainer
    workerIdentityId: deployWorkerHosts ? workerIdentity.id : ''
    workerPrincipalId: deployWorkerHosts ? workerIdentity!.properties.principalId : ''
    loadBalancerIdentityId: deployLoadBalancerHosts ? loadBalancerIdentity.id : ''
    loadBalancerPrincipalId: deployLoadBalancerHosts ? loadBalancerIdentity!.properties.principalId : ''
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    tablePrefix: ecsStoragePrefix
    functionIdentityId: functionIdentity.id
    functionPrincipalId: functionIdentity.properties.principalId
    allowedSubnetIds: [
      network.outputs.functionSubnetId
      network.outputs.workerSubnetId
      network.outputs.loadBalancerSubnetId
    ]
    allowedIpRanges: operatorIpRanges
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: names.keyVault
    location: location
    tags: tags
    purgeProtection: keyVaultPurgeProtection
    softDeleteRetentionDays: keyVaultSoftDeleteRetentionDays
    storageAccountName: names.storage
    ecsAccessKeys: ecsAccessKeys
    deployWebhookSecrets: deployWebhookSecrets
    deployWebhookEnabled: !empty(deployWebhookSecrets)
    functionIdentityId: functionIdentity.id
    functionPrincipalId: functionIdentity.properties.principalId
    allowedSubnetIds: [
      network.outputs.functionSubnetId
    ]
    allowedIpRanges: operatorIpRanges
  }
  // Reads the account's keys by name, so it waits for the account explicitly.
  dependsOn: [
    storage
  ]
}

module monitoring 'modules/monitoring.bicep' = if (deployApplicationInsights) {
  name: 'monitoring'
  params: {
    logAnalyticsName: names.logAnalytics
    appInsightsName: names.appInsights
    location: location
    tags: tags
    publisherIdentityId: functionIdentity.id
    publisherPrincipalId: functionIdentity.properties.principalId
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    planName: names.plan
    appName: names.functionApp
    location: location
    tags: tags
    planSku: functionPlanSku
    minimumInstances: functionMinimumInstances
    maximumInstances: functionMaximumInstances
    identityId: functionIdentity.id
    identityClientId: functionIdentity.properties.clientId
    storageConnectionSecretUri: keyVault.outputs.storageConnectionSecretUri
    blobServiceUri: storage.outputs.blobEndpoint
    queueServiceUri: storage.outputs.queueEndpoint
    tableServiceUri: storage.outputs.tableEndpoint
    accessKeysSecretUri: keyVault.outputs.accessKeysSecretUri
    webhookSecretUri: keyVault.outputs.webhookSecretUri
    kekUri: keyVault.outputs.kekUri
    contentShareName: contentShareName
    subnetId: network.outputs.functionSubnetId
    appInsightsConnectionString: deployApplicationInsights ? monitoring!.outputs.connectionString : ''
    ecsSettings: {
      Ecs__Region: ecsRegion
      Ecs__AccountId: ecsAccountId
      Ecs__MaxRequestBodyBytes: string(ecsMaxRequestBodyBytes)
      Ecs__StoragePrefix: ecsStoragePrefix
      Ecs__AgentHeartbeatSeconds: string(agentHeartbeatSeconds)
      Ecs__AgentDisconnectedAfterSeconds: string(agentDisconnectedAfterSeconds)
      Ecs__AgentLostAfterSeconds: string(agentLostAfterSeconds)
      Ecs__StoppedTaskRetentionMinutes: string(stoppedTaskRetentionMinutes)
    }
    poolSettings: managedPool ? {
      Capacity__ScaleSets__0__Pool: workerPoolName
      Capacity__ScaleSets__0__ResourceId: resourceId('Microsoft.Compute/virtualMachineScaleSets', 'vmss-${names.workerPrefix}')
      Capacity__ScaleSets__0__Cluster: workerCluster
      Capacity__ScaleSets__0__MinSize: string(workerPoolMinSize)
      Capacity__ScaleSets__0__MaxSize: string(workerPoolMaxSize)
    } : {}
  }
}

// The scale set is a capacity provider's worker pool, resized by managed scaling.
var managedPool = deployWorkerHosts && !empty(workerCapacityProvider)

module workers 'modules/workers.bicep' = if (deployWorkerHosts) {
  name: 'workers'
  params: {
    namePrefix: names.workerPrefix
    location: location
    tags: tags
    count: workerCount
    vmSize: workerVmSize
    osDiskSizeGB: workerOsDiskSizeGB
    adminUsername: workerAdminUsername
    sshPublicKey: workerSshPublicKey
    identityId: workerIdentity.id
    identityClientId: workerIdentity!.properties.clientId
    subnetId: network.outputs.workerSubnetId
    tableServiceUri: storage.outputs.tableEndpoint
    queueServiceUri: storage.outputs.queueEndpoint
    packageUrl: empty(workerPackageUrl) ? '${storage.outputs.blobEndpoint}${workerPackageContainer}/${workerPackageBlob}' : workerPackageUrl
    packageUsesManagedIdentity: empty(workerPackageUrl)
    dotnetChannel: workerDotnetChannel
    managedPool: managedPool
    poolManagerPrincipalId: managedPool ? functionIdentity.properties.principalId : ''
    settings: union({
      Worker__Cluster: workerCluster
      Worker__InstanceType: workerVmSize
      Worker__HeartbeatSeconds: string(agentHeartbeatSeconds)
      Ecs__Region: ecsRegion
      Ecs__AccountId: ecsAccountId
      Ecs__StoragePrefix: ecsStoragePrefix
    }, managedPool ? { Worker__CapacityProvider: workerCapacityProvider } : {})
  }
}

module loadBalancers 'modules/loadbalancers.bicep' = if (deployLoadBalancerHosts) {
  name: 'loadbalancers'
  params: {
    namePrefix: names.loadBalancerPrefix
    location: location
    tags: tags
    count: loadBalancerCount
    vmSize: loadBalancerVmSize
    adminUsername: workerAdminUsername
    sshPublicKey: workerSshPublicKey
    identityId: loadBalancerIdentity.id
    identityClientId: loadBalancerIdentity!.properties.clientId
    subnetId: network.outputs.loadBalancerSubnetId
    tableServiceUri: storage.outputs.tableEndpoint
    queueServiceUri: storage.outputs.queueEndpoint
    packageUrl: empty(loadBalancerPackageUrl) ? '${storage.outputs.blobEndpoint}${workerPackageContainer}/${loadBalancerPackageBlob}' : loadBalancerPackageUrl
    packageUsesManagedIdentity: empty(loadBalancerPackageUrl)
    dotnetChannel: workerDotnetChannel
    wakePort: loadBalancerWakePort
    publicListeners: !empty(loadBalancerSourceRanges)
    settings: {
      Ecs__Region: ecsRegion
      Ecs__AccountId: ecsAccountId
      Ecs__StoragePrefix: ecsStoragePrefix
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

@description('The ECS endpoint: aws ecs --endpoint-url <this> --region <ecsRegion> ...')
output ecsEndpoint string = functionApp.outputs.url

@description('Name of the Functions app (publish target).')
output functionAppName string = functionApp.outputs.name

@description('Name of the Key Vault holding the storage connection string and the access keys.')
output keyVaultName string = keyVault.outputs.name

@description('Name of the storage account (Tables, Queues, worker packages).')
output storageAccountName string = storage.outputs.name

@description('Blob container the worker hosts download the published worker from (when workerPackageUrl is empty).')
output workerPackageContainer string = workerPackageContainer

@description('Blob name of the published worker inside workerPackageContainer.')
output workerPackageBlob string = workerPackageBlob

@description('Name of the worker scale set (empty when deployWorkerHosts is false).')
output workerScaleSetName string = deployWorkerHosts ? workers!.outputs.scaleSetName : ''

@description('Blob name of the published data plane inside workerPackageContainer.')
output loadBalancerPackageBlob string = loadBalancerPackageBlob

@description('Name of the load balancer data plane scale set (empty when deployLoadBalancerHosts is false).')
output loadBalancerScaleSetName string = deployLoadBalancerHosts ? loadBalancers!.outputs.scaleSetName : ''
