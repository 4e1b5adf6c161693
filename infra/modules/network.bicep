// The network both halves share, so Storage and Key Vault can refuse every other one: a VNet with
// the Functions app's integration subnet (delegated to Microsoft.Web/serverFarms) and the worker
// hosts' subnet, each with service endpoints for what it reaches (Storage; Key Vault for the app,
// which resolves its Key Vault references through the VNet), and the load balancer data plane's
// subnet. A NAT gateway gives them their outbound internet (apt, the .NET runtime, image pulls);
// nothing comes in from the internet but, when listenerSourceRanges names any, the data plane's
// listener ports from those ranges.
param namePrefix string
param location string
param tags object
param addressPrefix string
param functionSubnetPrefix string
param workerSubnetPrefix string
param loadBalancerSubnetPrefix string

@description('TCP ports or ranges (e.g. 80, 8000-8999) the data plane\'s listeners may use, opened to listenerSourceRanges.')
param listenerPorts array

@description('Addresses, CIDR ranges or service tags (Internet) let in to listenerPorts. Empty: the listeners are reached from the VNet only.')
param listenerSourceRanges array

resource nsg 'Microsoft.Network/networkSecurityGroups@2025-05-01' = {
  name: 'nsg-${namePrefix}'
  location: location
  tags: tags
  properties: {
    // Only the default rules: VNet and load balancer traffic in, nothing from the internet. Task
    // ports are reachable inside the VNet; add rules (or a load balancer) to expose services.
    securityRules: []
  }
}

// The data plane's subnet: the VNet's default rules (the control plane's wakes, clients in the VNet) and
// the listener ports from listenerSourceRanges, nothing else (no SSH from the internet).
resource loadBalancerNsg 'Microsoft.Network/networkSecurityGroups@2025-05-01' = {
  name: 'nsg-${namePrefix}-lb'
  location: location
  tags: tags
  properties: {
    securityRules: empty(listenerSourceRanges) ? [] : [
      {
        name: 'listeners'
        properties: {
          priority: 100
          direction: 'Inbound'
          access: 'Allow'
          protocol: 'Tcp'
          sourceAddressPrefixes: listenerSourceRanges
          sourcePortRange: '*'
          destinationAddressPrefix: '*'
          destinationPortRanges: listenerPorts
        }
      }
    ]
  }
}

resource natIp 'Microsoft.Network/publicIPAddresses@2025-05-01' = {
  name: 'pip-${namePrefix}-nat'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource nat 'Microsoft.Network/natGateways@2025-05-01' = {
  name: 'ng-${namePrefix}'
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 10
    publicIpAddresses: [
      {
        id: natIp.id
      }
    ]
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2025-05-01' = {
  name: 'vnet-${namePrefix}'
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'functions'
        properties: {
          addressPrefix: functionSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          natGateway: {
            id: nat.id
          }
          delegations: [
            {
              name: 'functions'
              properties: {
                serviceName: 'Microsoft.Web/serverFarms'
              }
            }
          ]
          serviceEndpoints: [
            { service: 'Microsoft.Storage' }
            { service: 'Microsoft.KeyVault' }
          ]
          defaultOutboundAccess: false
        }
      }
      {
        name: 'workers'
        properties: {
          addressPrefix: workerSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          natGateway: {
            id: nat.id
          }
          // Tables, Queues and the worker package blob; the hosts need nothing from Key Vault.
          serviceEndpoints: [
            { service: 'Microsoft.Storage' }
          ]
          // Outbound goes through the NAT gateway, never Azure's implicit default outbound access.
          defaultOutboundAccess: false
        }
      }
      {
        name: 'loadbalancers'
        properties: {
          addressPrefix: loadBalancerSubnetPrefix
          networkSecurityGroup: {
            id: loadBalancerNsg.id
          }
          natGateway: {
            id: nat.id
          }
          // Its table, the reconcile queue and its package blob.
          serviceEndpoints: [
            { service: 'Microsoft.Storage' }
          ]
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

output vnetName string = vnet.name
output functionSubnetId string = vnet.properties.subnets[0].id
output workerSubnetId string = vnet.properties.subnets[1].id
output loadBalancerSubnetId string = vnet.properties.subnets[2].id
