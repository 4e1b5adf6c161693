// The load balancer data plane (src/LoadBalancer): a Linux scale set in its own subnet
// (modules/network.bicep) whose cloud-init (loadbalancer/cloud-init.yaml) installs the ASP.NET Core
// runtime and runs the published data plane as the systemd service ecs-loadbalancer. Each VM serves
// every listener defined through the ELBv2 API on its port (LoadBalancer__ListenAddress 0.0.0.0),
// takes the control plane's configuration wakes on UDP wakePort at its private IP, and reaches its
// table and the reconcile queue with the VMs' managed identity: no storage key or other secret on the
// hosts. With publicListeners, each VM also gets a public IP; the subnet's NSG admits only the
// listener ports, from the configured ranges.
param namePrefix string
param location string
param tags object
param count int
param vmSize string
param adminUsername string
param sshPublicKey string

@description('Resource id of the hosts\' user-assigned identity.')
param identityId string
param identityClientId string

@description('Resource id of the load balancer subnet.')
param subnetId string

@description('Table and Queue service endpoints of the storage account.')
param tableServiceUri string
param queueServiceUri string

@description('URL of the published data plane (.tar.gz).')
param packageUrl string

@description('Fetch packageUrl with a managed identity token (a blob in this deployment\'s account).')
param packageUsesManagedIdentity bool
param dotnetChannel string

@description('UDP port the data plane takes configuration wakes on (LoadBalancer__WakePort), at the VM\'s private IP.')
param wakePort int

@description('Give each VM a public IP, so clients outside the VNet reach the listeners (the NSG admits only the listener ports).')
param publicListeners bool

@description('Ecs__* and LoadBalancer__* settings, name to value.')
param settings object

// /etc/ecs-loadbalancer/loadbalancer.env: read by systemd (EnvironmentFile) for the data plane and its start script.
var hostSettings = {
  LOADBALANCER_IDENTITY_CLIENT_ID: identityClientId
  // An identity-based connection (src/Core/Storage/StorageAccess.cs), named as the Functions host names one.
  AzureWebJobsStorage__tableServiceUri: tableServiceUri
  AzureWebJobsStorage__queueServiceUri: queueServiceUri
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  LOADBALANCER_PACKAGE_URL: packageUrl
  LOADBALANCER_PACKAGE_AUTH: packageUsesManagedIdentity ? 'managed-identity' : 'none'
  DOTNET_CHANNEL: dotnetChannel
  DOTNET_ROOT: '/usr/lib/dotnet'
  DOTNET_NOLOGO: '1'
  // Listeners on every interface (the NSG decides who reaches them); wakes on the private IP (start.sh, IMDS).
  LoadBalancer__ListenAddress: '0.0.0.0'
  LoadBalancer__WakePort: string(wakePort)
}
var envFile = '${join(map(items(union(hostSettings, settings)), s => '${s.key}=${s.value}'), '\n')}\n'
var cloudInit = replace(loadTextContent('../loadbalancer/cloud-init.yaml'), '__LOADBALANCER_ENV_B64__', base64(envFile))

var ipConfiguration = {
  primary: true
  subnet: {
    id: subnetId
  }
}

resource scaleSet 'Microsoft.Compute/virtualMachineScaleSets@2025-04-01' = {
  name: 'vmss-${namePrefix}'
  location: location
  tags: tags
  sku: {
    name: vmSize
    tier: 'Standard'
    capacity: count
  }
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    orchestrationMode: 'Uniform'
    upgradePolicy: {
      mode: 'Manual'
    }
    overprovision: false
    singlePlacementGroup: false
    virtualMachineProfile: {
      osProfile: {
        computerNamePrefix: 'ecslb'
        adminUsername: adminUsername
        customData: base64(cloudInit)
        linuxConfiguration: {
          disablePasswordAuthentication: true
          ssh: {
            publicKeys: [
              {
                path: '/home/${adminUsername}/.ssh/authorized_keys'
                keyData: sshPublicKey
              }
            ]
          }
          provisionVMAgent: true
        }
      }
      storageProfile: {
        imageReference: {
          publisher: 'Canonical'
          offer: 'ubuntu-24_04-lts'
          sku: 'server'
          version: 'latest'
        }
        osDisk: {
          createOption: 'FromImage'
          caching: 'ReadWrite'
          managedDisk: {
            storageAccountType: 'Premium_LRS'
          }
        }
      }
      securityProfile: {
        securityType: 'TrustedLaunch'
        uefiSettings: {
          secureBootEnabled: true
          vTpmEnabled: true
        }
      }
      diagnosticsProfile: {
        bootDiagnostics: {
          enabled: true
        }
      }
      networkProfile: {
        networkInterfaceConfigurations: [
          {
            name: 'nic'
            properties: {
              primary: true
              enableAcceleratedNetworking: false
              ipConfigurations: [
                {
                  name: 'ipconfig'
                  properties: publicListeners
                    ? union(ipConfiguration, {
                        publicIPAddressConfiguration: {
                          name: 'pip'
                          sku: {
                            name: 'Standard'
                            tier: 'Regional'
                          }
                          properties: {
                            idleTimeoutInMinutes: 4
                          }
                        }
                      })
                    : ipConfiguration
                }
              ]
            }
          }
        ]
      }
    }
  }
}

output scaleSetName string = scaleSet.name
